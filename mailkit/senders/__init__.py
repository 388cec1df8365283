"""Adapters that send mail: one module per way mail can leave the application."""
