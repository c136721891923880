#!/usr/bin/env escript
%% P1: spawn_link links before the child runs: a child that dies at once still signals.
-include("trace.hrl").

scenario() ->
    process_flag(trap_exit, true),
    P = spawn_link(fun() -> exit(early) end),
    trace([trapping, receive {'EXIT', P, R} -> R end]),
    process_flag(trap_exit, false),
    {M, _} = spawn_monitor(fun() ->
                                   spawn_link(fun() -> error(boom) end),
                                   receive never -> ok end
                           end),
    trace([middle, wait_down(M)]),
    trace([left, flush()]).
