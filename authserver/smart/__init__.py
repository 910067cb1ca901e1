"""SMART App Launch rules as pure code: no Flask, no SQLAlchemy."""
