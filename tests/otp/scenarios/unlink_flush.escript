#!/usr/bin/env escript
%% P3: after unlink the link has no effect, but an EXIT already queued stays queued.
-include("trace.hrl").

scenario() ->
    process_flag(trap_exit, true),
    P = spawn_link(fun() -> receive stop -> exit(bye) end end),
    R = monitor(process, P),
    P ! stop,
    receive {'DOWN', R, process, P, Why} -> trace([down, Why]) end,
    unlink(P),
    trace([flushed, receive {'EXIT', P, X} -> X after 0 -> none end]),
    trace([left, flush()]),
    Q = spawn_link(fun() -> receive stop -> exit(bye) end end),
    unlink(Q),
    monitor(process, Q),
    Q ! stop,
    trace([down, wait_down(Q)]),
    trace([left, flush()]).
