#!/usr/bin/env escript
%% P4, P9: a dying process releases its name before its DOWN goes out; the receiver of the
%% DOWN can register the name again at once.
-include("trace.hrl").

scenario() ->
    Parent = self(),
    P = spawn(fun() -> register(srv, self()), Parent ! registered, receive stop -> ok end end),
    receive registered -> ok end,
    trace([whereis, whereis(srv) =:= P]),
    try register(srv, self()) catch error:E -> trace([register, taken, E]) end,
    R = monitor(process, P),
    P ! stop,
    receive {'DOWN', R, process, P, Why} -> trace([down, Why, whereis, whereis(srv)]) end,
    Q = spawn(fun() -> receive stop -> ok end end),
    trace([register_again, register(srv, Q)]),
    trace([whereis, whereis(srv) =:= Q]),
    monitor(process, Q),
    srv ! stop,
    trace([down, wait_down(Q), whereis, whereis(srv)]),
    try srv ! hello catch error:E2 -> trace([send_to_free_name, E2]) end.
