"""Plain text over TCP, comma-separated beacons and contact log.
Defect: the client crashes on Beacon before Download_tempID."""
VARIANT = {"tcp": "text", "beacon": "csv", "log_layout": "comma", "crash_on_early_beacon": True,
           "texts": {"invalid": "Wrong password, try again.", "no_user": "No such user."}}
