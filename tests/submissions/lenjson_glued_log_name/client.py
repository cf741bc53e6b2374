"""The client (see btcore.py and variant.py)."""
import btcore
import variant

btcore.client_main(variant.VARIANT)
