#!/usr/bin/env escript
%% P1: at most one link per pair; linking again does nothing; one unlink removes it.
-include("trace.hrl").

scenario() ->
    process_flag(trap_exit, true),
    P = spawn(fun() -> receive stop -> exit(bye) end end),
    link(P),
    link(P),
    {links, Links} = process_info(self(), links),
    trace([links_to_p, length([L || L <- Links, L =:= P])]),
    P ! stop,
    trace([got, receive M -> M end]),
    trace([left, flush()]),
    Q = spawn(fun() -> receive stop -> exit(bye) end end),
    link(Q),
    link(Q),
    unlink(Q),
    monitor(process, Q),
    Q ! stop,
    trace([down, wait_down(Q)]),
    trace([left, flush()]).
