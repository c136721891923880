#!/usr/bin/env escript
%% S8: brutal_kill kills (a trapping child prints nothing); a timeout sends shutdown and
%% kills a child that does not stop in time (shutdown_error killed); infinity waits.
-module(sup_shutdown_modes).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    Specs = [spec(inf, #{kind => slow, shutdown => infinity}),
             spec(tmo, #{kind => stubborn, shutdown => 100}),
             spec(bk, #{kind => trap, shutdown => brutal_kill}),
             spec(ok, #{shutdown => 1000})],
    {ok, _} = supervisor:start_link({local, sup}, ?MODULE, {#{}, Specs}),
    show("terminate_child bk", supervisor:terminate_child(sup, bk)),
    show("restart_child bk", supervisor:restart_child(sup, bk)),
    stop(sup).
