"""OAuth for Google and Microsoft: client configuration, consent, tokens in the secret store."""
