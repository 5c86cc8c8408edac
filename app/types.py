"""Column types shared by the domain models."""
from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql import JSONB

JsonDoc = JSON().with_variant(JSONB(), "postgresql")
