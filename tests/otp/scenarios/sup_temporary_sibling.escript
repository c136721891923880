#!/usr/bin/env escript
%% S2: a temporary child terminated because a sibling failed (one_for_all) is not restarted,
%% and its spec is gone.
-module(sup_temporary_sibling).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    {ok, _} = supervisor:start_link({local, sup}, ?MODULE,
                                    {#{strategy => one_for_all},
                                     [spec(a), spec(x, #{restart => temporary}), spec(c)]}),
    crash(c, boom, sup),
    which(sup),
    stop(sup).
