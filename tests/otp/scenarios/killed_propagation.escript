#!/usr/bin/env escript
%% P6: a process killed with kill propagates killed to its links; one that exits with
%% reason kill itself propagates kill, which its links can trap.
-include("trace.hrl").

scenario() ->
    run(fun(A) -> exit(A, kill) end),
    run(fun(A) -> A ! die end),
    trace([left, flush()]).

run(Kill) ->
    A = spawn(fun() -> receive die -> exit(kill) end end),
    AR = monitor(process, A),
    {B, BR} = watcher(A, false),
    {C, CR} = watcher(A, true),
    Kill(A),
    receive {'DOWN', AR, process, A, WhyA} -> trace([a, died, WhyA]) end,
    receive {'DOWN', BR, process, B, WhyB} -> trace([b, died, WhyB]) end,
    receive {C, Got} -> trace([c, got, Got]) end,
    receive {'DOWN', CR, process, C, WhyC} -> trace([c, died, WhyC]) end.

%% A process linked to A, trapping exits or not, that reports what it receives.
watcher(A, Trap) ->
    Parent = self(),
    W = spawn(fun() ->
                      process_flag(trap_exit, Trap),
                      link(A),
                      Parent ! {self(), linked},
                      receive M -> Parent ! {self(), M} end
              end),
    R = monitor(process, W),
    receive {W, linked} -> ok end,
    {W, R}.
