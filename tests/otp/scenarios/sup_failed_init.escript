#!/usr/bin/env escript
%% S7: a child failing to start in init: the ones started stop in reverse order, the start
%% fails naming the child.
-module(sup_failed_init).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    Specs = [spec(a), spec(b),
             #{id => c, start => {?MODULE, start_failing, [c, nope]}}, spec(d)],
    show("start_link", supervisor:start_link({local, sup}, ?MODULE,
                                              {#{strategy => one_for_one}, Specs})),
    await_exit(sup).
