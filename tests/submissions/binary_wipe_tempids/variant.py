"""A binary TCP format (no pickle); the beacon's version written as the digit 1;
a contact log with a received-at column, named after a student's zID as the
assignment allows. Defect: the server empties tempIDs.txt at start."""
VARIANT = {"tcp": "binary", "beacon": "raw-text-version", "log_layout": "extra",
           "log_name": "z5000000_contactlog.txt", "wipe_tempids": True}
