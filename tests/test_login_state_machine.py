"""Login and blocking as a state machine: the server core against a model.

Hypothesis drives many users, right and wrong passwords from fresh sessions,
unknown usernames, and a clock that jumps (including to the exact second a
block ends). The model is written independently of the core, from the rules
in protocol_spec.md section 4.
"""

from datetime import datetime

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bluetrace.protocol.clock import ManualClock
from bluetrace.protocol.messages import LoginReply, LoginRequest
from bluetrace.protocol.wire import LoginStatus
from bluetrace.server.core import Limits
from bluetrace.testing import ServerSide

USERS = {"+61410000001": "alpha1", "+61410000002": "bravo2", "+61410000003": "charlie3"}
UNKNOWN = ["+61499999999", "nobody"]
BLOCK = 60.0


class LoginMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(datetime(2020, 5, 14, 12, 0, 0))
        # The per-address limit is tested on its own; here one address tries everything.
        limits = Limits(failed_logins_per_minute=10**9)
        self.side = ServerSide(USERS, block=BLOCK, clock=self.clock, limits=limits)
        self.core = self.side.core
        self.failures = dict.fromkeys(USERS, 0)
        self.blocked_until: dict[str, float] = {}
        self.logins_while_blocked = 0

    def _blocked(self, user: str) -> bool:
        until = self.blocked_until.get(user)
        if until is not None and self.clock.monotonic() >= until:
            del self.blocked_until[user]
            self.failures[user] = 0
            return False
        return until is not None

    def _login(self, user: str, password: str) -> LoginStatus:
        # A fresh connection for every attempt: the count belongs to the user.
        (reply,) = self.side.connect().send(LoginRequest(user, password))
        assert isinstance(reply, LoginReply)
        return reply.status

    @rule(user=st.sampled_from(sorted(USERS)), right=st.booleans())
    def login(self, user: str, right: bool) -> None:
        password = USERS[user] if right else USERS[user] + "x"
        status = self._login(user, password)
        if self._blocked(user):
            assert status is LoginStatus.BLOCKED
            return
        if status is LoginStatus.OK and self.blocked_until.get(user):
            self.logins_while_blocked += 1
        if right:
            assert status is LoginStatus.OK
            self.failures[user] = 0
            return
        self.failures[user] += 1
        if self.failures[user] == 3:
            assert status is LoginStatus.BLOCKED_NOW
            self.blocked_until[user] = self.clock.monotonic() + BLOCK
            self.failures[user] = 0
        else:
            assert status is LoginStatus.WRONG_PASSWORD

    @rule(user=st.sampled_from(UNKNOWN), password=st.sampled_from(["alpha1", "x"]))
    def unknown_user(self, user: str, password: str) -> None:
        assert self._login(user, password) is LoginStatus.UNKNOWN_USER

    @rule(seconds=st.sampled_from([0.5, 1.0, 10.0, 30.0, 59.0, 60.0, 61.0, 600.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: bool(self.blocked_until))
    @rule(data=st.data(), offset=st.sampled_from([-0.5, 0.0]))
    def jump_to_block_end(self, data: st.DataObject, offset: float) -> None:
        user = data.draw(st.sampled_from(sorted(self.blocked_until)))
        target = self.blocked_until[user] + offset
        if target > self.clock.monotonic():
            self.clock.advance(target - self.clock.monotonic())

    @invariant()
    def nobody_logs_in_while_blocked(self) -> None:
        assert self.logins_while_blocked == 0

    @invariant()
    def core_counts_match_the_model(self) -> None:
        for user in USERS:
            if not self._blocked(user):
                assert self.core.guard.failures(user) == self.failures[user]


LoginMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestLoginMachine = LoginMachine.TestCase
