"""Length-prefixed JSON, JSON beacons, binds to '' (every interface).
Defect: the server thread crashes on an upload holding a received beacon."""
VARIANT = {"tcp": "lenjson", "beacon": "json", "bind": "", "crash_on_upload": True,
           "texts": {"welcome": "Login successful, welcome!", "error": "Unknown command"}}
