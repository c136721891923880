#!/usr/bin/env escript
%% P5: the exit signal of a linked process that ends with each kind of reason, to a
%% trapping and a non-trapping process (kill by a link is not untrappable).
-include("trace.hrl").

scenario() ->
    [via_link(Trap, How) || Trap <- [false, true],
                            How <- [normal, shutdown, custom, crash, kill, {shutdown, x}]],
    trace([left, flush()]).

via_link(Trap, How) ->
    Parent = self(),
    {P, R} = spawn_monitor(fun() ->
                                   process_flag(trap_exit, Trap),
                                   C = spawn_link(fun() -> receive go -> die(How) end end),
                                   CR = monitor(process, C),
                                   C ! go,
                                   receive {'DOWN', CR, process, C, _} -> ok end,
                                   Parent ! {self(), flush()},
                                   receive stop -> ok end
                           end),
    receive
        {'DOWN', R, process, P, Why} ->
            trace([trap, Trap, How, died, Why]);
        {P, Got} ->
            trace([trap, Trap, How, alive, Got]),
            P ! stop,
            trace([then, wait_down(P)])
    end.

die(normal) -> ok;
die(crash) -> error(boom);
die(Reason) -> exit(Reason).
