#!/usr/bin/env escript
%% S4, S6: intensity 2 allows two restarts in the period; the third gives up: report, the
%% remaining children stop in reverse order, the supervisor exits with shutdown.
%% One one_for_all restart of three children is one event.
-module(sup_intensity).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    {ok, _} = supervisor:start_link({local, sup}, ?MODULE,
                                    {#{strategy => one_for_all, intensity => 2, period => 3600},
                                     [spec(a), spec(b), spec(c)]}),
    crash(a, boom, sup),
    crash(c, boom, sup),
    which(sup),
    crash(b, boom, sup),
    await_exit(sup).
