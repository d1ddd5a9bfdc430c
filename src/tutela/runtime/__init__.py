"""AI runtime security: detectors for prompts and answers, and the gateway that puts them inline."""
