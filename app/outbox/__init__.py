"""The transactional outbox's table (the logic lives in workers/outbox.py)."""
