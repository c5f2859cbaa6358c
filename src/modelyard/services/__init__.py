"""The control plane: every business rule lives here, and only here."""
