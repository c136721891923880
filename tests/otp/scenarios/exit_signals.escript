#!/usr/bin/env escript
%% P5: exit/2 with each reason to a trapping and a non-trapping process.
-include("trace.hrl").

scenario() ->
    [signal(Trap, Reason) || Trap <- [false, true],
                             Reason <- [normal, kill, shutdown, custom, {shutdown, x}]],
    trace([left, flush()]).

signal(Trap, Reason) ->
    Parent = self(),
    {P, R} = spawn_monitor(fun() ->
                                   process_flag(trap_exit, Trap),
                                   Parent ! ready,
                                   receive report -> Parent ! {self(), flush()} end,
                                   receive stop -> ok end
                           end),
    receive ready -> ok end,
    exit(P, Reason),
    P ! report,
    receive
        {'DOWN', R, process, P, Why} ->
            trace([trap, Trap, Reason, died, Why]);
        {P, Got} ->
            trace([trap, Trap, Reason, alive, Got]),
            P ! stop,
            trace([then, wait_down(P)])
    end.
