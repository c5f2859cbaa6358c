"""Storage interfaces (``base``) and their implementations (``sql``, ``artifacts``)."""
