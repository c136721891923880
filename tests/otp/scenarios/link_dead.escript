#!/usr/bin/env escript
%% P2: linking to a dead process: noproc, raised (not trapping) or as an EXIT (trapping).
-include("trace.hrl").

scenario() ->
    {D, _} = spawn_monitor(fun() -> ok end),
    trace([dead, wait_down(D)]),
    try link(D) of
        V -> trace([linked, V])
    catch
        C:E -> trace([caught, C, E])
    end,
    trace([self_alive, true]),
    {L, _} = spawn_monitor(fun() -> link(D) end),
    trace([uncaught, wait_down(L)]),
    process_flag(trap_exit, true),
    link(D),
    trace([trapping, got, receive M -> M end]),
    trace([left, flush()]).
