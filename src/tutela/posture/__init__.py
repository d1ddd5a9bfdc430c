"""AI posture (AI-SPM): model-file scanning, AI asset discovery and the AI bill of materials."""
