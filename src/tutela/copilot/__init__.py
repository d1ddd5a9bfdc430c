"""Security copilot: plain-language questions answered from tutela's own data, with the query shown."""
