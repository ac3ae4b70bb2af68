// msgpackr catches this and decodes with its own JavaScript (see package.json).
throw new Error('msgpackr-extract is disabled in Switchyard: no native addons');
