"""Withdrawals: rules, requests, review, and payouts to WeChat balance (商家转账)."""
