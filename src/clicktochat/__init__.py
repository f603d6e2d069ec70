"""clicktochat: self-hosted click-to-chat links, short links and QR codes."""

__version__ = "0.1.0"
