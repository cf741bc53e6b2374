"""The server (see btcore.py and variant.py)."""
import btcore
import variant

btcore.server_main(variant.VARIANT)
