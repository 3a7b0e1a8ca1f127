"""Never run: this package exists to be rejected by `tessera plugin check`."""
