"""Correct: JSON lines over TCP, the raw 59-byte beacon."""
VARIANT = {"tcp": "jsonl", "beacon": "raw"}
