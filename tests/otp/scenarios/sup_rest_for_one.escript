#!/usr/bin/env escript
%% S3 rest_for_one: the failed child and those started after it.
-module(sup_rest_for_one).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    {ok, _} = supervisor:start_link({local, sup}, ?MODULE,
                                    {#{strategy => rest_for_one},
                                     [spec(a), spec(b), spec(c), spec(d)]}),
    crash(b, boom, sup),
    which(sup),
    stop(sup).
