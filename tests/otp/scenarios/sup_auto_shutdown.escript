#!/usr/bin/env escript
%% S9: any_significant: a significant child ending by itself shuts the supervisor down;
%% terminate_child of a significant child does not. all_significant waits for all of them.
-module(sup_auto_shutdown).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    Flags = #{auto_shutdown => any_significant},
    {ok, _} = supervisor:start_link({local, sup}, ?MODULE,
        {Flags, [spec(a), spec(s1, #{restart => transient, significant => true}),
                 spec(s2, #{restart => temporary, significant => true})]}),
    show("terminate_child s2", supervisor:terminate_child(sup, s2)),
    which(sup),
    crash(s1, normal, sup),
    await_exit(sup),
    {ok, _} = supervisor:start_link({local, sup2}, ?MODULE,
        {#{auto_shutdown => all_significant},
         [spec(b), spec(s3, #{restart => transient, significant => true}),
          spec(s4, #{restart => temporary, significant => true})]}),
    crash(s3, shutdown, sup2),
    which(sup2),
    crash(s4, normal, sup2),
    await_exit(sup2).
