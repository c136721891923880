#!/usr/bin/env escript
%% S5: a restart whose start fails is retried, each retry counting toward the intensity,
%% until the supervisor gives up.
-module(sup_failed_restart).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    Specs = [spec(a), #{id => b, start => {?MODULE, start_flaky, [b, trap, 1]}}, spec(c)],
    {ok, _} = supervisor:start_link({local, sup}, ?MODULE,
                                    {#{strategy => one_for_one, intensity => 3,
                                       period => 3600}, Specs}),
    crash(b, boom, sup),
    await_exit(sup).
