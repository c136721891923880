#!/usr/bin/env escript
%% S2: permanent always restarted; transient not after normal, shutdown or {shutdown, _};
%% temporary never, and its spec is deleted.
-module(sup_restart_types).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    Specs = [spec(p1), spec(p2, #{restart => permanent}),
             spec(t1, #{restart => transient}), spec(t2, #{restart => transient}),
             spec(t3, #{restart => transient}), spec(t4, #{restart => transient}),
             spec(x1, #{restart => temporary}), spec(x2, #{restart => temporary})],
    {ok, _} = supervisor:start_link({local, sup}, ?MODULE,
                                    {#{strategy => one_for_one, intensity => 10}, Specs}),
    crash(p1, normal, sup),
    crash(p2, shutdown, sup),
    crash(t1, normal, sup),
    crash(t2, shutdown, sup),
    crash(t3, {shutdown, bye}, sup),
    crash(t4, boom, sup),
    crash(x1, normal, sup),
    crash(x2, boom, sup),
    which(sup),
    count(sup),
    stop(sup).
