"""one name, one meaning: a grade's downline thresholds were called team thresholds

"Team" is only a captain's team (app/teams); a grade rule measures the member's whole downline.

Revision ID: 0008_downline_names
Revises: 0007_domain_events
"""
from alembic import op

revision = "0008_downline_names"
down_revision = "0007_domain_events"
branch_labels = None
depends_on = None

RENAMED = {"min_team_size": "min_downline_size", "min_team_sales_fen": "min_downline_sales_fen"}


def _rename(names: dict[str, str]) -> None:
    # recreate="never": SQLite (3.25+) renames a column in place. Batch mode's default copies the table and drops
    # the old one, which SQLite refuses while member_grades rows reference it (foreign keys are on).
    with op.batch_alter_table("grades", recreate="never") as batch:
        for old, new in names.items():
            batch.alter_column(old, new_column_name=new)


def upgrade():
    _rename(RENAMED)


def downgrade():
    _rename({new: old for old, new in RENAMED.items()})
