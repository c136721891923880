#!/usr/bin/env escript
%% S7: a child failing to start in init: the ones started stop in reverse order, the start
%% fails naming the child. OTP 25 also sends the starter the supervisor's EXIT; xsactor's
%% server.start_link does not (docs/actors.md): taken here, unprinted.
-module(sup_failed_init).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    Specs = [spec(a), spec(b),
             #{id => c, start => {?MODULE, start_failing, [c, nope]}}, spec(d)],
    show("start_link", supervisor:start_link({local, sup}, ?MODULE,
                                              {#{strategy => one_for_one}, Specs})),
    receive {'EXIT', _, {shutdown, {failed_to_start_child, c, nope}}} -> ok end.
