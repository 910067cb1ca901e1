"""End-user sign-in: argon2id passwords, TOTP (pure), and the Flask session glue."""
