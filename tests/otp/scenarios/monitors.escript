#!/usr/bin/env escript
%% P7: monitors are one-way, each call gives an independent reference, a dead target gives
%% DOWN with noproc at once.
-include("trace.hrl").

scenario() ->
    P = spawn(fun() -> receive stop -> exit(bye) end end),
    R1 = monitor(process, P),
    R2 = monitor(process, P),
    trace([distinct, R1 =/= R2]),
    P ! stop,
    D1 = receive {'DOWN', R1, process, P, X1} -> X1 end,
    D2 = receive {'DOWN', R2, process, P, X2} -> X2 end,
    trace([downs, D1, D2]),
    R3 = monitor(process, P),
    trace([dead, receive {'DOWN', R3, process, P, X3} -> X3 end]),
    Parent = self(),
    T = spawn(fun() -> receive stop -> ok end end),
    {H, HR} = spawn_monitor(fun() -> monitor(process, T), Parent ! ready, exit(gone) end),
    receive ready -> ok end,
    receive {'DOWN', HR, process, H, Why} -> trace([holder, died, Why]) end,
    trace([target_alive, is_process_alive(T)]),
    TR = monitor(process, T),
    T ! stop,
    receive {'DOWN', TR, process, T, WhyT} -> trace([target, died, WhyT]) end,
    trace([left, flush()]).
