"""AI access security: which GenAI apps are used, from proxy, DNS and firewall logs."""
