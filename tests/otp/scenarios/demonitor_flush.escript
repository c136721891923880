#!/usr/bin/env escript
%% P8: after demonitor no DOWN for the reference arrives; flush removes one already queued.
-include("trace.hrl").

scenario() ->
    P = spawn(fun() -> receive stop -> ok end end),
    R0 = monitor(process, P),
    trace([demonitor_active, demonitor(R0, [info])]),
    R1 = monitor(process, P),
    R2 = monitor(process, P),
    P ! stop,
    %% whichever DOWN comes first, the other one is flushed
    Other = receive
                {'DOWN', R1, process, P, W1} -> trace([down, W1]), R2;
                {'DOWN', R2, process, P, W2} -> trace([down, W2]), R1
            end,
    trace([demonitor_flush, demonitor(Other, [flush])]),
    trace([left, flush()]),
    trace([demonitor_again, demonitor(Other, [info])]).
