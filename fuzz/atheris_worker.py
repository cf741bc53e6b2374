"""The coverage-guided run itself (started by ``python -m fuzz``, not by hand).

Only bluetrace's own modules are instrumented, and only those the parsers
import: instrumenting construct and the standard library as well took about
a minute before the first input and told the fuzzer nothing about bluetrace.
Arguments are libFuzzer's, passed through.
"""

import sys

import atheris

with atheris.instrument_imports(include=["bluetrace"]):
    import bluetrace.protocol.errors
    import bluetrace.protocol.framing
    import bluetrace.protocol.messages
    import bluetrace.protocol.wire  # noqa: F401  instrumented for the fuzzer's coverage

from fuzz.targets import check_input  # imports the modules instrumented above

atheris.Setup(sys.argv, check_input)
atheris.Fuzz()
