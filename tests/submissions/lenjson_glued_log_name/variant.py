"""Length-prefixed JSON. Defects: the first TempID is glued onto the sample
tempIDs.txt's last line (no line end before it), and the contact log is named
<user>-contactlog.txt."""
VARIANT = {"tcp": "lenjson", "beacon": "raw", "glued_tempids": True,
           "log_name": "{user}-contactlog.txt"}
