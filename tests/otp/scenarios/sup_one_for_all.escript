#!/usr/bin/env escript
%% S3 one_for_all: the others stop in reverse start order, all start again in start order.
-module(sup_one_for_all).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    {ok, _} = supervisor:start_link({local, sup}, ?MODULE,
                                    {#{strategy => one_for_all}, [spec(a), spec(b), spec(c)]}),
    crash(b, boom, sup),
    which(sup),
    stop(sup).
