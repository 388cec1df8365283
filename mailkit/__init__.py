"""mailkit: set up, test and audit the outgoing email of business software."""
