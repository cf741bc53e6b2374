"""JSON lines. Defects: contact-log entries are removed only lazily (on the
next beacon or upload), and failed logins are counted per connection."""
VARIANT = {"tcp": "jsonl", "beacon": "raw", "lazy_removal": True,
           "per_connection_failures": True}
