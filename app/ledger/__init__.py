"""Double-entry ledger in integer fen: accounts, balanced journal entries, cached balances, consistency check."""
