"""Leaderboards: individuals, teams and stores ranked by sales, new members and commission, per Shanghai day,
ISO week, month and all time. Boards subscribe to the domains' events; nothing below calls them."""
