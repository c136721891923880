#!/usr/bin/env escript
%% S3 one_for_one: start in order, restart only the failed child, stop in reverse order.
-module(sup_one_for_one).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    {ok, _} = supervisor:start_link({local, sup}, ?MODULE,
                                    {#{strategy => one_for_one}, [spec(a), spec(b), spec(c)]}),
    crash(b, boom, sup),
    which(sup),
    stop(sup).
