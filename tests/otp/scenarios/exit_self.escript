#!/usr/bin/env escript
%% P6: exit(self(), Reason): normal ends a non-trapping caller; trapping gets a message;
%% kill ends it with killed, trapping or not.
-include("trace.hrl").

scenario() ->
    [self_signal(Trap, Reason) || Trap <- [false, true], Reason <- [normal, custom, kill]],
    trace([left, flush()]).

self_signal(Trap, Reason) ->
    Parent = self(),
    {P, R} = spawn_monitor(fun() ->
                                   process_flag(trap_exit, Trap),
                                   exit(self(), Reason),
                                   Parent ! {self(), flush()}
                           end),
    receive
        {'DOWN', R, process, P, Why} ->
            trace([trap, Trap, Reason, died, Why]);
        {P, Got} ->
            trace([trap, Trap, Reason, alive, Got]),
            trace([then, wait_down(P)])
    end.
