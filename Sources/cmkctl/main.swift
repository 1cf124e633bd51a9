import CMKCtl

await CMKCtlCommand.runAndExit()
