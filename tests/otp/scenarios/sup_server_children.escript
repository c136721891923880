#!/usr/bin/env escript
%% P11 under a supervisor: a gen_server child runs terminate on its supervisor's shutdown only
%% when it traps exits and its shutdown is a timeout (not brutal_kill, not without trapping).
-module(sup_server_children).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    Server = fun(Id, Trap, Shutdown) ->
        #{id => Id, start => {?MODULE, start_server, [Id, Trap]}, shutdown => Shutdown}
    end,
    {ok, _} = supervisor:start_link({local, sup}, ?MODULE,
        {#{}, [Server(trapping, true, 1000), Server(plain, false, 1000),
               Server(killed, true, brutal_kill), Server(infinite, true, infinity)]}),
    show("terminate_child trapping", supervisor:terminate_child(sup, trapping)),
    show("restart_child trapping", supervisor:restart_child(sup, trapping)),
    stop(sup).
