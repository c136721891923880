#!/usr/bin/env escript
%% P10: messages from one sender arrive in the order sent; a selective receive leaves the
%% others queued in order.
-include("trace.hrl").

scenario() ->
    Parent = self(),
    [spawn(fun() -> [Parent ! {N, I} || I <- lists:seq(1, 5)] end) || N <- [a, b]],
    receive {b, 3} = First -> trace([first, First]) end,
    Rest = [receive M -> M end || _ <- lists:seq(1, 9)],
    trace([a, [I || {a, I} <- Rest]]),
    trace([b, [I || {b, I} <- Rest]]),
    self() ! {x, 1},
    self() ! {y, 2},
    self() ! {x, 3},
    trace([selective, receive {y, _} = Y -> Y end]),
    trace([left, flush()]).
