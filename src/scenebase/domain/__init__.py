"""Pure domain rules: identifiers, roles and permissions. No I/O here."""
